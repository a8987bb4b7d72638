//! Refusing state changes that a web page makes through a visitor's browser.
//!
//! A browser sends requests wherever a page tells it to, from the visitor's network position:
//! an `<img src="http://127.0.0.1:8000/run?url=...">` on any site would enqueue a job on a
//! server that only the visitor can reach, and a script's `fetch(.., {method: "DELETE"})` would
//! cancel one (the page cannot read the answer, but the harm is done). Browsers say where such
//! requests come from: `Origin` (on every cross-origin request but a plain `GET`) and
//! `Sec-Fetch-Site` (on every request, in current browsers). So the routes that change state
//! (`/run` and `DELETE /jobs/{id}`) refuse a request whose `Origin` is not this server's own
//! (`scheme://host:port` against the request's `Host`) or whose `Sec-Fetch-Site` is
//! `cross-site` or `same-site` (a sibling origin, such as another port of the same host, is as
//! foreign to this server as any other site). Requests without these headers (curl, scripts,
//! servers) and a browser's same-origin or user-typed (`none`) requests pass.

use axum::extract::Request;
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::ApiError;

/// Refuses the request if a browser says another site's page sent it.
pub(crate) async fn same_origin_only(request: Request, next: Next) -> Response {
    match cross_site(request.headers(), request.uri()) {
        Some(why) => ApiError::client(
            StatusCode::FORBIDDEN,
            "cross_site",
            format!(
                "refused: {why}, so another site's page sent it through a browser; a web page \
                 cannot submit or cancel jobs for its visitors. Call the API from a script, curl \
                 or a server (which send no Origin), or from a page of this server's own origin"
            ),
        )
        .into_response(),
        None => next.run(request).await,
    }
}

/// Why the request is cross-site, or `None` when it is not (or no browser sent it).
fn cross_site(headers: &HeaderMap, uri: &Uri) -> Option<String> {
    if let Some(site) = headers.get("sec-fetch-site") {
        let site = site.to_str().unwrap_or_default().trim();
        if site.eq_ignore_ascii_case("cross-site") || site.eq_ignore_ascii_case("same-site") {
            return Some(format!("its Sec-Fetch-Site is `{site}`"));
        }
    }
    let origin = headers.get(header::ORIGIN)?;
    let shown = String::from_utf8_lossy(origin.as_bytes()).into_owned();
    // HTTP/1.1 names the server in `Host`; HTTP/2 in the `:authority` that becomes the URI's.
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_owned)
        .or_else(|| uri.authority().map(|a| a.as_str().to_owned()));
    let Some(host) = host else {
        return Some(format!(
            "its Origin is `{shown}` and it names no Host to compare it with"
        ));
    };
    let same = origin
        .to_str()
        .ok()
        .is_some_and(|origin| same_authority(origin, &host));
    (!same).then(|| format!("its Origin `{shown}` is not this server (`{host}`)"))
}

/// Whether `origin` (`scheme://host[:port]`) is the server the `host` header (`host[:port]`)
/// names: same host, ignoring case, and same port, a missing one being the default of the
/// origin's scheme (the server cannot tell its own scheme behind a TLS-terminating proxy).
fn same_authority(origin: &str, host: &str) -> bool {
    // `null` (sandboxed frames, file pages) and anything unparsable are not this server.
    let Ok(origin) = origin.parse::<Uri>() else {
        return false;
    };
    let Ok(host) = host.parse::<axum::http::uri::Authority>() else {
        return false;
    };
    let (Some(scheme), Some(origin_host)) = (origin.scheme_str(), origin.host()) else {
        return false;
    };
    let default_port = match scheme.to_ascii_lowercase().as_str() {
        "http" => 80,
        "https" => 443,
        _ => return false,
    };
    // An Origin is exactly scheme, host and port: a path, a query or user info means it is not
    // one (`Uri` reads a missing path as `/`).
    let bare_path = origin
        .path_and_query()
        .is_none_or(|p| matches!(p.as_str(), "" | "/"));
    let user_info = origin.authority().is_some_and(|a| a.as_str().contains('@'));
    if !bare_path || user_info {
        return false;
    }
    origin_host.eq_ignore_ascii_case(host.host())
        && origin.port_u16().unwrap_or(default_port) == host.port_u16().unwrap_or(default_port)
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, HeaderValue::from_str(value).expect("a header value"));
        }
        map
    }

    #[test]
    fn the_servers_own_origin_and_no_origin_pass() {
        let uri = Uri::from_static("/run");
        let cases: &[&[(&str, &str)]] = &[
            &[],
            &[("host", "127.0.0.1:8000")],
            &[
                ("host", "127.0.0.1:8000"),
                ("origin", "http://127.0.0.1:8000"),
            ],
            &[
                ("host", "Solver.Example:443"),
                ("origin", "https://solver.example"),
            ],
            &[
                ("host", "solver.example"),
                ("origin", "http://solver.example:80"),
            ],
            &[("host", "[::1]:8000"), ("origin", "http://[::1]:8000")],
            &[
                ("host", "localhost:8000"),
                ("sec-fetch-site", "same-origin"),
            ],
            &[("host", "localhost:8000"), ("sec-fetch-site", "none")],
        ];
        for case in cases {
            assert_eq!(cross_site(&headers(case), &uri), None, "{case:?}");
        }
    }

    #[test]
    fn another_origin_or_a_cross_site_fetch_is_refused() {
        let uri = Uri::from_static("/run");
        let cases: &[(&[(&str, &str)], &str)] = &[
            (
                &[
                    ("host", "127.0.0.1:8000"),
                    ("origin", "https://evil.example"),
                ],
                "its Origin `https://evil.example` is not this server (`127.0.0.1:8000`)",
            ),
            (
                &[
                    ("host", "127.0.0.1:8000"),
                    ("origin", "http://127.0.0.1:3000"),
                ],
                "its Origin `http://127.0.0.1:3000` is not this server (`127.0.0.1:8000`)",
            ),
            (
                &[
                    ("host", "solver.example:8443"),
                    ("origin", "https://solver.example"),
                ],
                "its Origin `https://solver.example` is not this server (`solver.example:8443`)",
            ),
            (
                &[
                    ("host", "solver.example"),
                    ("origin", "https://solver.example.evil"),
                ],
                "its Origin `https://solver.example.evil` is not this server (`solver.example`)",
            ),
            (
                &[("host", "127.0.0.1:8000"), ("origin", "null")],
                "its Origin `null` is not this server (`127.0.0.1:8000`)",
            ),
            (
                &[("origin", "http://127.0.0.1:8000")],
                "its Origin is `http://127.0.0.1:8000` and it names no Host to compare it with",
            ),
            (
                &[("host", "127.0.0.1:8000"), ("sec-fetch-site", "cross-site")],
                "its Sec-Fetch-Site is `cross-site`",
            ),
            (
                &[("host", "127.0.0.1:8000"), ("sec-fetch-site", "same-site")],
                "its Sec-Fetch-Site is `same-site`",
            ),
            (
                &[
                    ("host", "127.0.0.1:8000"),
                    ("origin", "http://127.0.0.1:8000"),
                    ("sec-fetch-site", "Cross-Site"),
                ],
                "its Sec-Fetch-Site is `Cross-Site`",
            ),
        ];
        for (case, want) in cases {
            assert_eq!(
                cross_site(&headers(case), &uri).as_deref(),
                Some(*want),
                "{case:?}"
            );
        }
    }

    #[test]
    fn http2_requests_compare_with_their_authority() {
        let uri = Uri::from_static("http://127.0.0.1:8000/run");
        let own = headers(&[("origin", "http://127.0.0.1:8000")]);
        assert_eq!(cross_site(&own, &uri), None);
        let other = headers(&[("origin", "http://127.0.0.1:9000")]);
        assert!(cross_site(&other, &uri).is_some());
    }

    #[test]
    fn only_a_bare_origin_matches() {
        for origin in [
            "http://127.0.0.1:8000/path",
            "http://user@127.0.0.1:8000",
            "ftp://127.0.0.1:8000",
            "127.0.0.1:8000",
        ] {
            assert!(!same_authority(origin, "127.0.0.1:8000"), "{origin}");
        }
        assert!(same_authority("http://127.0.0.1:8000", "127.0.0.1:8000"));
    }
}
