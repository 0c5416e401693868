"""Model families shipped by evit-hf."""
