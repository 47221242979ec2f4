//! The admin routes: provisioning tenants.
//!
//! - `POST /v1/admin/tenants` `{"name": "acme"}`: a new, empty database; 201 with the tenant,
//!   or 409 `tenant_exists`.
//! - `GET /v1/admin/tenants`: every tenant with its datasets (tables and row counts), size and
//!   data version.
//! - `DELETE /v1/admin/tenants/{name}`: its queries end with `tenant_deleted`, its files are
//!   removed; 204.
//!
//! Invariant: with a tenants file these need an admin key ([`AdminAuthorized`]); without one
//! (open mode) they are served to loopback clients only, whatever the bind address.

use std::future::{ready, Ready};

use actix_web::dev::Payload;
use actix_web::{web, FromRequest, HttpRequest, HttpResponse};

use super::edge::{auth_parts, is_loopback, presented, read_body, refused};
use super::Settings;
use crate::engine::Engine;
use crate::error::GatewayError;
use crate::wire::admin::CreateTenant;
use crate::wire::TenantId;

/// A request allowed on the admin routes: an admin key, or (open mode) a loopback client.
pub struct AdminAuthorized;

impl FromRequest for AdminAuthorized {
    type Error = GatewayError;
    type Future = Ready<Result<Self, GatewayError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(authorize(req))
    }
}

fn authorize(req: &HttpRequest) -> Result<AdminAuthorized, GatewayError> {
    let (auth, metrics) = auth_parts(req)?;
    match presented(req, auth).and_then(|credential| auth.authorize_admin(&credential)) {
        Ok(true) => Ok(AdminAuthorized),
        Ok(false) if is_loopback(req) => Ok(AdminAuthorized),
        Ok(false) => Err(GatewayError::AccessDenied(
            "without a tenants file the admin routes are served to loopback clients only".into(),
        )),
        Err(e) => Err(refused(metrics, "admin", e)),
    }
}

pub async fn create_tenant(
    _: AdminAuthorized,
    payload: web::Payload,
    engine: web::Data<Engine>,
    settings: web::Data<Settings>,
) -> Result<HttpResponse, GatewayError> {
    let mut body = read_body(payload, settings.max_body_bytes, settings.body_timeout).await?;
    let request = CreateTenant::from_json(&mut body)?;
    let info = engine.create_tenant(&request.name).await?;
    json(HttpResponse::Created(), &info)
}

pub async fn list_tenants(
    _: AdminAuthorized,
    engine: web::Data<Engine>,
) -> Result<HttpResponse, GatewayError> {
    #[derive(serde::Serialize)]
    struct List {
        tenants: Vec<crate::wire::admin::TenantInfo>,
    }
    let tenants = engine.list_tenants().await?;
    json(HttpResponse::Ok(), &List { tenants })
}

pub async fn delete_tenant(
    _: AdminAuthorized,
    name: web::Path<String>,
    engine: web::Data<Engine>,
) -> Result<HttpResponse, GatewayError> {
    let id = TenantId::parse(&name)?;
    engine.delete_tenant(&id).await?;
    Ok(HttpResponse::NoContent().finish())
}

fn json(
    mut builder: actix_web::HttpResponseBuilder,
    value: &impl serde::Serialize,
) -> Result<HttpResponse, GatewayError> {
    let body = simd_json::serde::to_vec(value).map_err(GatewayError::internal)?;
    Ok(builder.content_type("application/json").body(body))
}
