# Anju app image. The database is a separate PostGIS (see docker-compose.yml); set DATABASE_URL.
# The browser assets (MapLibre GL, GraphiQL) from npm, served by /map and /graphql (no CDN).
FROM node:20-slim AS web
WORKDIR /web
COPY web/package.json web/package-lock.json ./
RUN npm ci --no-audit --no-fund --loglevel=error

FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 HOST=0.0.0.0 PORT=8000
WORKDIR /app
COPY pyproject.toml README.md alembic.ini ./
COPY anju ./anju
COPY schema ./schema
COPY resolvers ./resolvers
COPY models ./models
COPY migrations ./migrations
COPY data ./data
COPY web/pages ./web/pages
COPY --from=web /web/node_modules ./web/node_modules
RUN pip install --no-cache-dir -e . && useradd --system --home /app anju \
    && mkdir /app/.anju && chown anju /app/.anju
# .anju/ holds the generated JWT and ID-number secrets outside ANJU_ENV=prod: keep it on a volume
# (docker-compose.yml), or set ANJU_ENV=prod with ANJU_AUTH__JWT_SECRET and ANJU_PRIVACY__ID_NUMBER_KEY.
USER anju
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s CMD python -c "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/healthz').status != 200)"
# migrate + seed (idempotent) + serve
CMD ["anju", "up"]
