# The bot (Python 3.11). Rasa runs in its own container (rasa/rasa:3.6.21), see docker-compose.yml.
FROM python:3.11-slim
# PYTHONPATH: run from the copied tree, where content/ and nlu/ data files sit next to the code.
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PYTHONPATH=/app
WORKDIR /app
COPY pyproject.toml README.md ./
COPY bot ./bot
COPY nlu ./nlu
COPY content ./content
COPY storage ./storage
RUN pip install . && useradd --create-home rahnuma && mkdir -p /app/data && chown rahnuma /app/data
USER rahnuma
CMD ["rahnuma", "run"]
