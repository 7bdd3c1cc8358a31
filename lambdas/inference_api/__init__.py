"""The inference API: API Gateway -> online features -> the real-time endpoint -> a churn score."""
