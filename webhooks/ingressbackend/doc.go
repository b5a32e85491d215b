// Package ingressbackend admits IngressBackends only when their sources can actually be
// authenticated by their backends and no backend is declared twice.
package ingressbackend
