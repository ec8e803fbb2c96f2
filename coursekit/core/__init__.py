"""What every lecture uses: scales and seeds, data, models, training, masks and scores → mask, claims, figures."""
