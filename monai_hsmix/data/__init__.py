"""Dataset readers (Synapse, BraTS), demo data generation and training-loop integration."""
