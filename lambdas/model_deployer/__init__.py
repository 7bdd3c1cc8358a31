"""The model deployer: keeps the real-time endpoint on the latest approved model package."""
