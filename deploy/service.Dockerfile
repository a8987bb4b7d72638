# kaggle-solver/service: the binary over the local base image (see build-offline.sh).
ARG BASE
FROM $BASE
COPY kaggle-solver /usr/local/bin/kaggle-solver
COPY service-policies/ /usr/share/kaggle-solver/policies/
# The pinned guest runtime, in the layout of KS_HOME; compiled/ and competitions/ are left
# empty for volumes (compose mounts them) that keep the compiled modules and the competition
# cache across restarts.
COPY --chown=10001:10001 home/ /var/lib/kaggle-solver/
# Only the folders' own owners change here: a recursive chown would copy the runtime into
# another layer.
RUN mkdir -p /var/lib/kaggle-solver/compiled /var/lib/kaggle-solver/competitions /var/lib/ks-work \
 && chown 10001:10001 /var/lib/kaggle-solver /var/lib/kaggle-solver/compiled \
      /var/lib/kaggle-solver/competitions /var/lib/ks-work
ENV KS_HOME=/var/lib/kaggle-solver \
    KS_POLICY_DIR=/usr/share/kaggle-solver/policies \
    KS_DATA_DIR=/var/lib/ks-work \
    HOME=/var/lib/ks-work
USER 10001:10001
WORKDIR /var/lib/ks-work
ENTRYPOINT ["/usr/local/bin/kaggle-solver"]
CMD ["--help"]
