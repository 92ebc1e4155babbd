# callcenter service image.
#   docker build -t callcenter .
#   docker run -p 8080:8080 -p 5060:5060/udp -p 5060:5060/tcp callcenter
# Settings: mount a file over /etc/callcenter/callcenter.toml, or set
# CALLCENTER_* environment variables (see config/callcenter.example.toml).

FROM python:3.11-slim AS build
# The call path is compiled with mypyc (setup.py, docs/decisions/0003-mypyc.md):
# a C compiler and mypy are needed here only, not in the image.
RUN apt-get update \
    && apt-get install -y --no-install-recommends gcc libc6-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pyproject.toml setup.py README.md ./
COPY callcenter ./callcenter
RUN pip install --no-cache-dir "setuptools>=68" wheel "mypy>=1.10" \
    && CALLCENTER_COMPILE=1 pip wheel --no-cache-dir --no-build-isolation --wheel-dir /wheels . \
    && python -c "import zipfile, glob, sys; names = zipfile.ZipFile(glob.glob('/wheels/callcenter-*.whl')[0]).namelist(); sys.exit(not any(n.startswith('callcenter/sip/parser.') and n.endswith('.so') for n in names))"

FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    CALLCENTER_HTTP__HOST=0.0.0.0 \
    CALLCENTER_SIP__HOST=0.0.0.0
COPY --from=build /wheels /wheels
# tini is the image's PID 1: it passes signals on and reaps orphans (the
# embedded PostgreSQL's processes), which the service as PID 1 would leave as
# zombies (docs/records.md, "A full disk"). fonts-wqy-microhei is the CJK font
# the reports' PDF embeds and their charts draw with (docs/decisions/0010-reports.md);
# the Python libraries need no other system library.
RUN apt-get update \
    && apt-get install -y --no-install-recommends tini fonts-wqy-microhei \
    && rm -rf /var/lib/apt/lists/* \
    && pip install --no-cache-dir /wheels/*.whl \
    && rm -rf /wheels \
    && useradd --system --user-group --home-dir /var/lib/callcenter --create-home \
        --shell /usr/sbin/nologin callcenter
COPY config/callcenter.example.toml /etc/callcenter/callcenter.toml
# data_dir ("./var" by default) is relative to this directory.
WORKDIR /var/lib/callcenter
USER callcenter
EXPOSE 8080 5060/udp 5060/tcp
# Healthy only while /healthz answers 200 (503 = an account is not registered;
# "no-phones" is 200: phones switched off are no reason to restart the service).
# The port must match [http] port.
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=4).status != 200)"]
# Exec form, so SIGTERM from `docker stop` reaches the service (through tini),
# which stops within 8 s (inside docker's default 10 s grace period).
ENTRYPOINT ["tini", "--", "callcenter"]
CMD ["run", "--config", "/etc/callcenter/callcenter.toml"]
