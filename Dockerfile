# One image for the API and the workers; the command picks the role (see docker-compose.yml).
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
RUN apt-get update && apt-get install -y --no-install-recommends git && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY pyproject.toml constraints.txt README.md ./
COPY libs ./libs
COPY services ./services
RUN pip install --no-cache-dir -c constraints.txt . "rq-dashboard==0.9.0" six
EXPOSE 8000 9181
CMD ["model-trainer", "api", "--host", "0.0.0.0", "--port", "8000"]
