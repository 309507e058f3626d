# iotc-translator: the translator, and the same image runs the built-in IoT Central emulator.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app

COPY pyproject.toml README.md ./
COPY translator ./translator
COPY emulator ./emulator
COPY codecs ./codecs
# Volumes mounted on these folders take their owner from the image: create them for the unprivileged user.
RUN pip install . && useradd --system --home /state --uid 10001 iotc \
    && mkdir -p /state/translator /state/emulator && chown -R iotc /state

USER iotc
VOLUME ["/state"]
# LwM2M (CoAP/UDP, and DTLS), metrics and health; the emulator's MQTT (DPS + hub) and REST ports.
EXPOSE 5683/udp 5684/udp 9100 8883 8080

ENTRYPOINT ["iotc-translator"]
CMD ["serve", "--state-dir", "/state"]
