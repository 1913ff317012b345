# kubeinv collector image: slim, non-root. Build: docker build -t kubeinv .
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY collector ./collector
COPY sql ./sql
RUN pip install --no-cache-dir --upgrade pip \
 && pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.11-slim
LABEL org.opencontainers.image.title="kubeinv" \
      org.opencontainers.image.description="Asynchronous multi-cluster Kubernetes inventory collector"
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    KUBEINV_LOG__FORMAT=json \
    KUBEINV_METRICS__HOST=0.0.0.0 \
    KUBEINV_METRICS__PORT=9108 \
    KUBEINV_DATA_DIR=/var/lib/kubeinv
# The wheel carries sql/ (schema, migrations, named queries) as collector/_sql.
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels \
 && groupadd --system --gid 10001 kubeinv \
 && useradd --system --uid 10001 --gid kubeinv --home-dir /var/lib/kubeinv --create-home \
      --shell /usr/sbin/nologin kubeinv
USER 10001:10001
WORKDIR /var/lib/kubeinv
EXPOSE 9108
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s \
  CMD python -c "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:9108/healthz', timeout=3).status == 200 else 1)"
ENTRYPOINT ["kubeinv"]
CMD ["run"]
