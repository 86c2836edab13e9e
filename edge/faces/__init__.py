"""Face matching against lawful watchlists (issue 15).

What this package does: find faces, align and embed them, and compare the embeddings 1:N with the
entries of a signed watchlist bundle the hub sent (embeddings and entry ids only). What it never
does, by design and by test: infer ethnicity, religion, emotion, age, gender or any similar trait;
keep, send or cluster faces that match no entry (non-matches are discarded in memory).

- :mod:`edge.faces.types`: the detector / embedder interfaces every backend implements.
- :mod:`edge.faces.backends`: the registry (``yunet-sface`` default, ``blazeface-sface``,
  ``insightface``) and the model files each needs.
- :mod:`edge.faces.quality`: the enrolment photo checks the hub runs.
- :mod:`edge.faces.bundle`: sealing (hub) and opening (edge) watchlist bundles.
- :mod:`edge.faces.gallery`: the 1:N cosine search over an opened bundle.
- :mod:`edge.faces.matcher`: the camera's per-track matching (k of n frames, cool-down).
"""
