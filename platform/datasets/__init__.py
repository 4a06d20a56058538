"""Where datasets come from: scikit-learn's built-ins or a user's CSV file, validated before anything is stored."""
