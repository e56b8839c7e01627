"""The Rakuten challenge file layout and the columns every step relies on."""

from __future__ import annotations

from pathlib import Path

from rakuten_mlops.errors import RakutenError

X_TRAIN = "X_train_update.csv"
Y_TRAIN = "Y_train_CVw08PX.csv"
X_TEST = "X_test_update.csv"
IMAGES_DIR = Path("images")
TRAIN_IMAGES_DIR = IMAGES_DIR / "image_train"
TEST_IMAGES_DIR = IMAGES_DIR / "image_test"

X_COLUMNS = ("designation", "description", "productid", "imageid")
LABEL = "prdtypecode"
INDEX = "index"
IMAGE_PATH = "image_path"
REASON = "reason"

EXPECTED_LAYOUT = f"""expected layout of a Rakuten data folder:
  {X_TRAIN}      unnamed integer index, then {", ".join(X_COLUMNS)}
  {Y_TRAIN}   the same index, then {LABEL}
  {X_TEST}       (optional) same columns as {X_TRAIN}, no labels
  {TRAIN_IMAGES_DIR}/image_<imageid>_product_<productid>.jpg   (optional)"""


def image_filename(imageid: int, productid: int) -> str:
    """File name the challenge uses for a product's image."""
    return f"image_{int(imageid)}_product_{int(productid)}.jpg"


class LayoutError(RakutenError, ValueError):
    """A data folder or file does not follow the challenge layout."""

    def __init__(self, message: str, *, path: Path | str | None = None) -> None:
        where = f"{path}: " if path is not None else ""
        super().__init__(f"{where}{message}\n{EXPECTED_LAYOUT}")
        self.path = path
