"""``python -m selectseg``: the command-line interface (also what ``torchrun -m selectseg train`` runs)."""

from .cli import app

if __name__ == "__main__":
    app()
