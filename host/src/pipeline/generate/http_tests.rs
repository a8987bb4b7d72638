//! Unit tests for the HTTP plumbing: which statuses retry, backoff, `retry-after`, provider
//! messages, and sensitive key headers.

use super::*;

#[test]
fn retryable_statuses() {
    for code in [408, 409, 429, 500, 502, 503, 529] {
        assert!(
            is_retryable(StatusCode::from_u16(code).expect("a status")),
            "{code}"
        );
    }
    for code in [400, 401, 403, 404, 413, 422] {
        assert!(
            !is_retryable(StatusCode::from_u16(code).expect("a status")),
            "{code}"
        );
    }
}

#[test]
fn backoff_grows_with_jitter_and_is_capped() {
    let config = HttpConfig {
        initial_backoff: Duration::from_secs(2),
        max_backoff: Duration::from_secs(10),
        ..HttpConfig::default()
    };
    for _ in 0..50 {
        let first = backoff(&config, 1);
        assert!(first >= Duration::from_secs(1) && first <= Duration::from_secs(2));
        let third = backoff(&config, 3);
        assert!(third >= Duration::from_secs(4) && third <= Duration::from_secs(8));
        assert!(backoff(&config, 40) <= Duration::from_secs(10));
    }
}

type Headers<'a> = &'a [(&'a str, &'a str)];

#[test]
fn retry_after_as_seconds_date_or_milliseconds() {
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    let headers = |pairs: Headers<'_>| {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(
                reqwest::header::HeaderName::from_bytes(name.as_bytes()).expect("a header name"),
                HeaderValue::from_str(value).expect("a header value"),
            );
        }
        map
    };
    let date = httpdate::fmt_http_date(now + Duration::from_secs(30));
    let past = httpdate::fmt_http_date(now - Duration::from_secs(30));
    let cases: [(Headers<'_>, Option<Duration>); 6] = [
        (&[("retry-after", "7")], Some(Duration::from_secs(7))),
        (&[("retry-after", "1.5")], Some(Duration::from_millis(1500))),
        (&[("retry-after", &date)], Some(Duration::from_secs(30))),
        (&[("retry-after", &past)], Some(Duration::ZERO)),
        (
            &[("retry-after-ms", "250"), ("retry-after", "9")],
            Some(Duration::from_millis(250)),
        ),
        (&[("retry-after", "soon")], None),
    ];
    for (pairs, want) in cases {
        assert_eq!(retry_after(&headers(pairs), now), want, "{pairs:?}");
    }
    assert_eq!(retry_after(&HeaderMap::new(), now), None);
}

#[test]
fn provider_messages_are_found_and_cut() {
    let openai =
        br#"{"error":{"message":"Incorrect API key provided","type":"invalid_request_error"}}"#;
    assert_eq!(
        provider_message(openai, StatusCode::UNAUTHORIZED),
        "Incorrect API key provided"
    );
    let anthropic =
        br#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#;
    assert_eq!(
        provider_message(anthropic, StatusCode::from_u16(529).expect("a status")),
        "Overloaded"
    );
    assert_eq!(
        provider_message(br#"{"detail":"Not Found"}"#, StatusCode::NOT_FOUND),
        "Not Found"
    );
    assert_eq!(
        provider_message(b"  bad gateway  ", StatusCode::BAD_GATEWAY),
        "bad gateway"
    );
    assert_eq!(
        provider_message(b"", StatusCode::BAD_GATEWAY),
        "Bad Gateway"
    );
    let long = "x".repeat(5000);
    assert_eq!(
        provider_message(long.as_bytes(), StatusCode::BAD_REQUEST)
            .chars()
            .count(),
        MAX_MESSAGE_CHARS + 1
    );
}

#[test]
fn secret_headers_are_sensitive() {
    let provider = ProviderInfo {
        name: "test",
        key_var: "TEST_KEY",
        base_var: "TEST_BASE",
    };
    let client = HttpClient::new(provider, HttpConfig::default()).expect("a client");
    let header = client.secret_header("Bearer sk-secret").expect("a header");
    assert!(header.is_sensitive());
    assert!(!format!("{header:?}").contains("sk-secret"));
    let bad = client
        .secret_header("sk\nsecret")
        .expect_err("a newline is refused");
    assert!(bad.to_string().contains("TEST_KEY"), "{bad}");
    assert!(!bad.to_string().contains("secret\n"));
}

#[test]
fn urls_in_messages_hide_passwords_and_queries() {
    let url =
        Url::parse("https://user:pw@proxy.example/v1/messages?api-key=secret").expect("a URL");
    assert_eq!(redacted(&url), "https://user@proxy.example/v1/messages");
}
