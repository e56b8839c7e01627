"""The batch-scoring job as `spark-submit` runs it (the master comes from spark-submit):

    spark-submit --master k8s://https://<api-server> ... \\
        local:///opt/rakuten/spark_job.py --input s3a://catalog/listings --output s3a://catalog/scores

Settings (MLflow tracking URI, model name, credentials) come from the environment, as for every
other command (`RAKUTEN_*`, `MLFLOW_*`, `AWS_*`). Prints the summary as one JSON line; a user
error (bad input, missing model) prints one `error:` line and exits with code 2.
"""

from __future__ import annotations

import argparse
import json
import sys

from rakuten_mlops.config import Settings
from rakuten_mlops.errors import RakutenError
from rakuten_mlops.pipelines.predict import DEFAULT_CHUNK_SIZE
from rakuten_mlops.pipelines.spark_scoring import score_with_spark


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="spark_job.py", description=__doc__.splitlines()[0])
    parser.add_argument("--input", required=True, help="listings: CSV/Parquet file or folder, or a URI")
    parser.add_argument("--output", required=True, help="new folder for Parquet partitioned by prdtypecode")
    parser.add_argument("--images", default=None, help="folder of image_<imageid>_product_<productid>.jpg")
    parser.add_argument("--model-uri", default=None, help="default: models:/<model name>@champion")
    parser.add_argument("--chunk-size", type=int, default=DEFAULT_CHUNK_SIZE, help="rows per Arrow batch")
    parser.add_argument(
        "--master", default=None, help="only when run with python, not spark-submit (e.g. local[2])"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        result = score_with_spark(
            args.input, args.output, Settings(), args.images, args.model_uri, args.master, args.chunk_size
        )
    except RakutenError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
