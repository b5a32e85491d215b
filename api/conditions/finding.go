package conditions

// Severity ranks a Finding.
// +kubebuilder:validation:Enum=Info;Warning;Error
type Severity string

const (
	// SeverityInfo: worth knowing, nothing to do.
	SeverityInfo Severity = "Info"
	// SeverityWarning: the object works, but probably not as its author meant (a tcp port with no
	// ipAddresses opens every destination on that port).
	SeverityWarning Severity = "Warning"
	// SeverityError: part of the object has no effect or breaks traffic.
	SeverityError Severity = "Error"
)

// Finding is one observation a controller made about an object beyond "valid or not": the
// mistakes people make with OSM resources that a schema cannot catch, because they depend on other
// objects (an exclusion covering the Service CIDR, an external port shadowed by a mesh Service).
//
// It lives here rather than in an API group because MeshConfig (config group) and the policy kinds
// (policy group) both report findings, and this package is the one both groups already import and
// that registers no kinds of its own.
type Finding struct {
	// code is a stable PascalCase identifier that alerts and tests can match on.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=64
	// +kubebuilder:validation:Pattern=`^[A-Z][A-Za-z0-9]*$`
	Code string `json:"code"`

	// severity is Info, Warning or Error.
	// +required
	Severity Severity `json:"severity"`

	// message explains the finding and the action to take.
	// +required
	// +kubebuilder:validation:MaxLength=1024
	Message string `json:"message"`

	// objects names what the finding is about, as "kind/namespace/name" or "namespace/name".
	// +optional
	// +kubebuilder:validation:MaxItems=16
	// +kubebuilder:validation:items:MaxLength=512
	Objects []string `json:"objects,omitempty"`
}

// MaxFindings bounds status.findings on every kind; controllers keep the most severe ones.
const MaxFindings = 32
