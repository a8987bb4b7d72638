# kaggle-solver/redis: Debian's redis-server from the local base image (see build-offline.sh),
# with the append-only file on, so that a restarted Redis loses no job.
ARG BASE
FROM $BASE
RUN mkdir -p /data && chown redis:redis /data
USER redis
WORKDIR /data
EXPOSE 6379
# Reached only on the compose network (nothing publishes its port), hence no protected mode.
CMD ["redis-server", "--appendonly", "yes", "--appendfsync", "everysec", "--dir", "/data", \
     "--bind", "0.0.0.0", "--protected-mode", "no"]
