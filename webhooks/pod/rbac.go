package pod

// What only inject mode needs, generated into config/injector/role.yaml (injector-role): the
// watch on other injectors' webhook configurations (Gate), events about them, and the opt-in
// restarts of drifted workloads (controllers/autorestart.go), which audit mode never makes.
//
// +kubebuilder:rbac:groups=admissionregistration.k8s.io,resources=mutatingwebhookconfigurations,verbs=get;list;watch
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch
// +kubebuilder:rbac:groups=apps,resources=deployments;statefulsets;daemonsets,verbs=get;patch
