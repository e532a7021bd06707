# One image for every metalgate process; the compose file picks the command.
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY bootstrap bootstrap
COPY domain domain
COPY frontdoor frontdoor
COPY runtime runtime
COPY store store
COPY embedded embedded
COPY workflows workflows
COPY activities activities
COPY workers workers
COPY api api
COPY cli cli
COPY maas_emulator maas_emulator
COPY agent agent
COPY bench bench
RUN pip install . \
 && python -m bootstrap.agent_distribution /app /app/agent-package \
 && useradd --create-home --uid 10001 metalgate
# Nodes install their agent from the API: GET /v1/agent/package/<this wheel>.
ENV METALGATE_AGENT_PACKAGE_DIR=/app/agent-package
USER metalgate
ENV METALGATE_DATA_DIR=/home/metalgate/data
ENTRYPOINT ["metalgate"]
CMD ["--help"]
