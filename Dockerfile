# ebm-purify service image. CPU by default; `--build-arg TORCH_VARIANT=cu126` for the CUDA build
# (onnxruntime-gpu is installed on x86_64 either way and falls back to the CPU provider).
FROM python:3.11-slim

ARG TORCH_VARIANT=cpu
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    EBM_PURIFY_HOST=0.0.0.0 \
    EBM_PURIFY_PORT=8000

RUN useradd --create-home --uid 10001 app
WORKDIR /app

RUN pip install --no-cache-dir "torch==2.13.0" --index-url "https://download.pytorch.org/whl/${TORCH_VARIANT}"
COPY pyproject.toml README.md ./
COPY purifier ./purifier
COPY attacks ./attacks
COPY service ./service
COPY ebm_purify ./ebm_purify
RUN pip install --no-cache-dir .

USER 10001
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/v2/health/ready', timeout=4).status != 200)"]
ENTRYPOINT ["ebm-purify", "serve"]
