"""The @-format and datasets: geotags, image files, retrieval and training sets, samplers."""
