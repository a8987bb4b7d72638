-- wrk script: send every request as POST (wrk defaults to GET), the way clients submit jobs.
wrk.method = "POST"
