FROM python:3.13-slim

ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
# The locked dependencies first (exact versions, checked against their hashes), in a layer of
# their own that a change to the code does not rebuild; `./dev lock` writes the file.
COPY requirements/main.txt requirements/main.txt
RUN pip install --require-hashes --no-deps -r requirements/main.txt
COPY . .
RUN pip install --no-deps --no-build-isolation . \
 && pip check \
 && SECRET_KEY=collectstatic-only \
    DATABASE_URL=postgres://build@localhost/build \
    REDIS_URL=redis://localhost:6379/0 \
    STATIC_ROOT=/app/staticfiles \
    python manage.py collectstatic --no-input \
 && useradd --system --home /app mailer \
 && chown -R mailer /app

USER mailer
EXPOSE 8000 5555
CMD ["gunicorn", "settings.wsgi", "--bind", "0.0.0.0:8000"]
