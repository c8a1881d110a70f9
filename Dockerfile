# One image for every service of compose.yaml: the server (the default), the init job,
# simulated stations, a headless station. ENTRYPOINT is the command line; a service's
# command names what to run (serve, simulate, agent, db upgrade…).

# The wheel is built in a stage of its own, so the final image holds the installed package
# and no source tree: the migrations travel inside it (core.db.alembic, see pyproject.toml).
FROM python:3.11-slim AS wheel
WORKDIR /src
COPY . .
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /wheels .

FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# The font report PDFs embed (core/services/reports/pdf.py): → and °C print as typed.
RUN apt-get update && apt-get install -y --no-install-recommends fonts-dejavu-core \
    && rm -rf /var/lib/apt/lists/*

# Dependencies first, from pyproject.toml alone, so a code change does not reinstall them.
COPY pyproject.toml /tmp/pyproject.toml
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('/tmp/pyproject.toml', 'rb'))['project']['dependencies']))" \
        > /tmp/requirements.txt \
    && pip install -r /tmp/requirements.txt && rm /tmp/pyproject.toml /tmp/requirements.txt

# The project itself: a regular (not editable) install of the wheel.
COPY --from=wheel /wheels /wheels
RUN pip install --no-deps /wheels/*.whl && rm -rf /wheels

# A fixed uid, so files on the volumes keep their owner across rebuilds. The directories
# are the volumes' mount points: a new named volume takes their owner, so pp can write.
RUN useradd --uid 10001 --user-group --home-dir /app --create-home --shell /usr/sbin/nologin pp \
    && mkdir -p /app/data /app/pki /app/broker /app/accounts /app/trust /app/fleet \
    && chown pp:pp /app/data /app/pki /app/broker /app/accounts /app/trust /app/fleet
USER pp
WORKDIR /app

EXPOSE 8080
# The server answers and its database does (a station or the init job runs this image too:
# compose gives those services checks of their own).
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=5 \
    CMD ["python", "-c", "import urllib.request as r; r.urlopen('http://127.0.0.1:8080/api/v1/health', timeout=3)"]
ENTRYPOINT ["precisionpulse"]
# The schema must be current (the init job runs `precisionpulse db upgrade` first).
CMD ["serve", "--host", "0.0.0.0", "--port", "8080"]
