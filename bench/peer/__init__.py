"""django-post-office, set up as its documentation recommends, as the peer to measure against."""
