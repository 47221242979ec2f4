//! The application's shared state: what every route may use, built once by
//! [`super::Application::build`].
//!
//! Invariant: each piece is registered with actix on its own (`web::Data<Engine>`,
//! `web::Data<Authenticator>`, `web::Data<Metrics>`, `web::Data<transport::Settings>`), so a
//! handler names exactly what it uses and the transports never import this module.

use std::sync::Arc;

use actix_web::web;

use crate::auth::Authenticator;
use crate::engine::Engine;
use crate::metrics::Metrics;
use crate::transport;

/// Shared by every handler.
#[derive(Clone)]
pub struct AppState {
    pub engine: web::Data<Engine>,
    pub auth: web::Data<Authenticator>,
    pub metrics: web::Data<Metrics>,
    pub settings: web::Data<transport::Settings>,
    /// Live subscriptions (their channels run on the engine).
    pub hub: web::Data<transport::live::Hub>,
}

impl AppState {
    pub fn new(
        engine: Engine,
        auth: Authenticator,
        metrics: Arc<Metrics>,
        settings: transport::Settings,
    ) -> Self {
        let engine = web::Data::new(engine);
        let hub = transport::live::Hub::new(
            engine.clone().into_inner(),
            Arc::clone(&metrics),
            settings.subscription_max_bytes,
        );
        Self {
            engine,
            auth: web::Data::new(auth),
            metrics: web::Data::from(metrics),
            settings: web::Data::new(settings),
            hub: web::Data::new(hub),
        }
    }

    /// Registers every piece with an actix `App`.
    pub fn register(&self, cfg: &mut web::ServiceConfig) {
        cfg.app_data(self.engine.clone())
            .app_data(self.auth.clone())
            .app_data(self.metrics.clone())
            .app_data(self.settings.clone())
            .app_data(self.hub.clone());
    }
}
