//! The admin routes' wire types: provisioning tenants (`/v1/admin/tenants`).

use serde::{Deserialize, Serialize};

use super::{too_deep, TenantId, WireError, MAX_JSON_DEPTH};

/// `POST /v1/admin/tenants`: `{"name": "acme"}`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCreateTenant {
    name: String,
}

/// A tenant to create, its name validated (and not the reserved `admin`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateTenant {
    pub name: TenantId,
}

impl CreateTenant {
    pub fn from_json(body: &mut [u8]) -> Result<Self, WireError> {
        if too_deep(body, MAX_JSON_DEPTH) {
            return Err(WireError::InvalidJson(format!(
                "nested deeper than {MAX_JSON_DEPTH} levels"
            )));
        }
        // Not JSON at all is `invalid_json`; JSON of the wrong shape, `invalid_request`.
        if simd_json::to_borrowed_value(&mut body.to_vec()).is_err() {
            return Err(WireError::InvalidJson("the body is not JSON".into()));
        }
        let raw: RawCreateTenant = simd_json::serde::from_slice(body)
            .map_err(|e| WireError::InvalidRequest(e.to_string()))?;
        Ok(Self {
            name: TenantId::parse(&raw.name)?,
        })
    }
}

/// One table of a tenant, as the listing shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DatasetInfo {
    /// `table`, or `schema.table` outside `main`.
    pub name: String,
    pub rows: u64,
}

/// A tenant, as `GET /v1/admin/tenants` lists it (and `POST` answers).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TenantInfo {
    pub name: String,
    /// Size of its database file.
    pub bytes: u64,
    /// Bumped by every write the gateway makes (0: a database put in place by hand).
    pub data_version: u64,
    pub datasets: Vec<DatasetInfo>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_requests_are_checked() {
        let p = |s: &str| CreateTenant::from_json(&mut s.as_bytes().to_vec());
        assert_eq!(p(r#"{"name":"acme"}"#).unwrap().name.as_str(), "acme");
        assert_eq!(
            p(r#"{"name":"admin"}"#).unwrap_err(),
            WireError::InvalidTenant
        );
        assert_eq!(
            p(r#"{"name":"../x"}"#).unwrap_err(),
            WireError::InvalidTenant
        );
        assert!(matches!(
            p(r#"{"name":"a","x":1}"#),
            Err(WireError::InvalidRequest(_))
        ));
        assert!(matches!(p("{"), Err(WireError::InvalidJson(_))));
    }
}
