# One image for the server (and, in later stages, the simulated stations).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app

# The font report PDFs embed (core/services/reports/pdf.py): → and °C print as typed.
RUN apt-get update && apt-get install -y --no-install-recommends fonts-dejavu-core \
    && rm -rf /var/lib/apt/lists/*

# Dependencies first, so code edits do not reinstall them.
COPY pyproject.toml README.md ./
COPY core/__init__.py core/__init__.py
COPY webui/__init__.py webui/__init__.py
COPY desktop/__init__.py desktop/__init__.py
COPY broker/__init__.py broker/__init__.py
COPY demo/__init__.py demo/__init__.py
RUN pip install -e .

COPY . .
RUN useradd --create-home pp && mkdir -p /app/data && chown pp /app/data
USER pp

EXPOSE 8080
# Migrate, then serve: the server itself refuses to start on an out-of-date schema.
CMD ["sh", "-c", "precisionpulse db upgrade && precisionpulse serve --host 0.0.0.0 --port 8080"]
