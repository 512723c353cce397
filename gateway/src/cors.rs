//! Cross-origin resource sharing: which browser origins may call the gateway.
//!
//! Off unless origins are configured, so a gateway is same-origin by default. The layer answers
//! preflight (`OPTIONS`) requests itself, before any route runs, and adds the CORS headers to
//! actual responses. `Authorization` is always an allowed request header: a browser client
//! sends its token there and the gateway forwards it to subgraphs.

use std::time::Duration;

use axum::http::{HeaderName, HeaderValue, Method, header};
use tower_http::cors::{AllowOrigin, CorsLayer};

use crate::config::Config;
use crate::error::GatewayError;

/// Builds the CORS layer from the configuration; `None` when no origin is allowed.
pub fn layer(config: &Config) -> Result<Option<CorsLayer>, GatewayError> {
    let origins: Vec<&str> = config
        .cors_allow_origins
        .iter()
        .map(|o| o.trim())
        .filter(|o| !o.is_empty())
        .collect();
    if origins.is_empty() {
        return Ok(None);
    }
    let any = origins.contains(&"*");
    if any && config.cors_allow_credentials {
        // Browsers refuse `Access-Control-Allow-Origin: *` with credentials, and tower-http
        // panics on it at startup; echoing any origin instead would hand every site the
        // user's cookies, so the operator must list the origins.
        return Err(GatewayError::Cors(
            "`*` cannot be combined with allowing credentials; list the allowed origins".into(),
        ));
    }
    let allow_origin = if any {
        AllowOrigin::any()
    } else {
        let values = origins
            .iter()
            .map(|origin| {
                HeaderValue::from_str(origin)
                    .map_err(|_| GatewayError::Cors(format!("invalid origin '{origin}'")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        AllowOrigin::list(values)
    };
    let mut headers = vec![header::AUTHORIZATION, header::CONTENT_TYPE, header::ACCEPT];
    // A header the gateway forwards to subgraphs is one browsers must be allowed to send.
    for name in config
        .cors_allow_headers
        .iter()
        .chain(&config.propagate_headers)
    {
        let name = HeaderName::try_from(name.trim())
            .map_err(|_| GatewayError::Cors(format!("invalid header name '{name}'")))?;
        if !headers.contains(&name) {
            headers.push(name);
        }
    }
    Ok(Some(
        CorsLayer::new()
            .allow_origin(allow_origin)
            .allow_methods([Method::GET, Method::POST, Method::OPTIONS])
            .allow_headers(headers)
            .allow_credentials(config.cors_allow_credentials)
            .max_age(Duration::from_secs(config.cors_max_age_secs)),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn config(args: &[&str]) -> Config {
        let mut all = vec!["gateway"];
        all.extend_from_slice(args);
        Config::parse_from(all)
    }

    #[test]
    fn no_origins_means_no_cors() {
        assert!(matches!(layer(&config(&[])), Ok(None)));
    }

    #[test]
    fn wildcard_with_credentials_is_refused() {
        let config = config(&["--cors-allow-origin", "*", "--cors-allow-credentials"]);
        assert!(matches!(layer(&config), Err(GatewayError::Cors(_))));
    }

    #[test]
    fn invalid_header_name_is_refused() {
        let config = config(&[
            "--cors-allow-origin",
            "*",
            "--cors-allow-header",
            "bad header",
        ]);
        assert!(matches!(layer(&config), Err(GatewayError::Cors(_))));
    }
}
