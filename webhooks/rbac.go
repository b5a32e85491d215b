package webhooks

// Serving any webhook (config/injector, config/validating) means keeping the serving certificate
// and the CA bundles current; generated into config/webhook/role.yaml (webhook-role). What every
// mode reads is in the controllers' markers (config/rbac).
//
// +kubebuilder:rbac:groups="",resources=events,verbs=create;patch
// +kubebuilder:rbac:groups=admissionregistration.k8s.io,resources=mutatingwebhookconfigurations;validatingwebhookconfigurations,verbs=get;list;watch;update;patch
// +kubebuilder:rbac:groups="",resources=secrets,verbs=get;list;watch;update;patch,namespace=meshkeeper-system
