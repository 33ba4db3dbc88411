"""Flower's configuration (`celery -A settings flower --conf=settings/flowerconfig.py`).

Flower always runs behind basic authentication; it refuses to start without credentials.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from settings.environment import read_basic_auth

basic_auth = [
    read_basic_auth("FLOWER_BASIC_AUTH", "Flower's login as user:password (required by Flower).")
]
# Task arguments and names say which campaign a batch belongs to.
natural_time = False
persistent = False
max_tasks = 10000
