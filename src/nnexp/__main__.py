"""``python -m nnexp ...`` is ``nnexp-train ...``."""

from nnexp.train import main

if __name__ == "__main__":
    main()
