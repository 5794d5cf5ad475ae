"""python -m service --index DIR --host H --port P [--model M] [--milvus-uri URI [--collection NAME]]: the app on
Flask's development server.

For production run gunicorn: `gunicorn -c service/gunicorn.conf.py` (see that file). Logs are JSON lines on stderr,
as under gunicorn (service/requests_log.py).
"""
from __future__ import annotations

import argparse

from service import create_app


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m service", description=__doc__)
    parser.add_argument("--index", default=None, help="index folder (default: $QA_INDEX or ./index)")
    parser.add_argument("--model", default=None, help="sentence-transformers folder or hub id (default: $QA_MODEL)")
    parser.add_argument("--milvus-uri", default=None,
                        help="serve a Milvus collection, e.g. http://127.0.0.1:19530 (default: $QA_MILVUS_URI; "
                             "token: $QA_MILVUS_TOKEN)")
    parser.add_argument("--collection", default=None, help="the Milvus collection (default: $QA_COLLECTION or passages)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args(argv)
    given = {"QA_INDEX": args.index, "QA_MODEL": args.model, "QA_MILVUS_URI": args.milvus_uri,
             "QA_COLLECTION": args.collection}
    app = create_app({key: value for key, value in given.items() if value is not None})
    app.run(host=args.host, port=args.port, threaded=True)


if __name__ == "__main__":
    main()
