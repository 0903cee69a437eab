# Reitti: multi-stage. The build stage has gcc (durable-rules builds from source); the
# runtime stage has only the virtual environment and the code, and runs as a non-root user.
FROM python:3.11-slim-bookworm AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends gcc libc6-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY pyproject.toml README.md ./
COPY app ./app
# The same install step as the Makefile's, without the dev extras.
RUN python -m venv /app/.venv \
 && /app/.venv/bin/python -m pip install --quiet --upgrade pip \
 && /app/.venv/bin/python -m pip install --quiet -e .

FROM python:3.11-slim-bookworm
RUN useradd --system --uid 10001 --home-dir /app reitti \
 && mkdir -p /data && chown reitti /data
WORKDIR /app
COPY --from=build /app /app
COPY rules ./rules
COPY migrations ./migrations
COPY alembic.ini ./
ENV PATH=/app/.venv/bin:$PATH \
    REITTI_DATABASE_URL=sqlite:////data/reitti.db \
    PYTHONUNBUFFERED=1
USER reitti
EXPOSE 8000
HEALTHCHECK CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz')"
CMD ["sh", "-c", "reitti db upgrade && exec reitti serve --host 0.0.0.0 --port 8000"]
