// Package istio reads how Istio redirects a pod's traffic into the same model meshkeeper uses
// for Open Service Mesh (internal/redirect), so that drift, explain and diagnose judge Istio
// pods with the code that judges OSM pods. Istio renders a pod's iptables rules once, at
// admission, from the sidecar injector's values and the pod's traffic.sidecar.istio.io
// annotations; changing the values later leaves every running pod on its old rules, and Istio
// does not report it. This package parses the istio-init arguments (both the istio-iptables
// subcommand and the older bare-flag form), the annotations istio-cni pods carry, and the
// injector ConfigMap, and works out what a pod should have with Istio's own precedence. It is
// pure: callers gather the objects, this package judges.
package istio
