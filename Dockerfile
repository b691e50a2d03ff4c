# The report service, for docker-compose.yml (MONGODB_URI points at the mongo service there).
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY src ./src
COPY pipelines ./pipelines
COPY migrations ./migrations
RUN pip install --no-cache-dir .
EXPOSE 8000
# Inside a container the service must listen beyond loopback; compose publishes it on 127.0.0.1 only.
CMD ["uptime-monitor", "serve", "--host", "0.0.0.0", "--port", "8000"]
