//! Who may pass a route: its credentials checked and its roles compared,
//! each refusal put in the contract's terms (401, 400, 403, or 404 concealed).

use http::HeaderMap;

use crate::auth::{self, AuthError, Identity, Scheme};
use crate::error::GatewayError;
use crate::routing::RouteState;
use crate::state::Runtime;

/// Runs the route's authentication and maps its failure to the contract.
pub(crate) fn authenticate(
    runtime: &Runtime,
    route: &RouteState,
    headers: &HeaderMap,
) -> Result<Option<Identity>, GatewayError> {
    let accepts = route.config.auth;
    runtime
        .auth
        .authenticate(accepts, headers)
        .map_err(|e| match e {
            AuthError::Missing => GatewayError::Unauthenticated {
                challenges: runtime.auth.challenges(accepts, &[]),
            },
            AuthError::Invalid { scheme, why } => GatewayError::InvalidCredentials {
                challenges: runtime
                    .auth
                    .challenge(
                        scheme,
                        &[("error", "invalid_token"), ("error_description", &why)],
                    )
                    .to_string(),
                why,
            },
            AuthError::BadRequest { scheme, why } => GatewayError::MalformedCredentials {
                challenges: runtime
                    .auth
                    .challenge(
                        scheme,
                        &[("error", "invalid_request"), ("error_description", &why)],
                    )
                    .to_string(),
                why,
            },
        })
}

/// The route's roles against the identity: `authz.denied`, or
/// `authz.concealed` on a concealed route (`path` for its answer).
pub(crate) fn authorize(
    runtime: &Runtime,
    route: &RouteState,
    identity: Option<&Identity>,
    path: &str,
) -> Result<(), GatewayError> {
    if route.config.roles.is_empty()
        || identity.is_some_and(|id| auth::has_any_role(id, &route.config.roles))
    {
        return Ok(());
    }
    if route.config.conceal {
        return Err(GatewayError::Concealed {
            path: path.to_owned(),
        });
    }
    let needed = route.config.roles.join(" ");
    let challenges = match identity.map(|id| id.scheme) {
        Some(Scheme::ApiKey) => None,
        _ => Some(
            runtime
                .auth
                .challenge(
                    Scheme::Bearer,
                    &[("error", "insufficient_scope"), ("scope", &needed)],
                )
                .to_string(),
        ),
    };
    Err(GatewayError::Forbidden { challenges, needed })
}
