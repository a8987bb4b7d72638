# kaggle-solver/s3: the s3s-fs S3-compatible server over /data, from the local base image (see
# build-offline.sh). Each folder of /data is a bucket; the bucket of KS_STORE
# (s3://BUCKET/PREFIX) is made at start.
ARG BASE
FROM $BASE
COPY s3s-fs /usr/local/bin/s3s-fs
RUN mkdir -p /data && chown 10002:10002 /data
USER 10002:10002
WORKDIR /data
EXPOSE 9000
ENTRYPOINT ["/bin/sh", "-c", "bucket=\"${KS_STORE:?}\"; bucket=\"${bucket#s3://}\"; mkdir -p \"/data/${bucket%%/*}\" && exec s3s-fs --host 0.0.0.0 --port 9000 --access-key \"${AWS_ACCESS_KEY_ID:?}\" --secret-key \"${AWS_SECRET_ACCESS_KEY:?}\" /data"]
