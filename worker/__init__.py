"""imageledger: the image ledger worker."""
