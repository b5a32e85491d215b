{{/*
Labels Helm adds to every object's metadata (the kustomize overlays add
app.kubernetes.io/managed-by: kustomize instead). Selectors and pod templates never carry them.
*/}}
{{- define "meshkeeper.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{- end }}

{{/* The labels of meshkeeper's hand-written objects, Helm's besides. */}}
{{- define "meshkeeper.objectLabels" -}}
app.kubernetes.io/name: meshkeeper
app.kubernetes.io/part-of: meshkeeper
{{ include "meshkeeper.labels" . }}
{{- end }}

{{/* Whether any admission webhook is served. */}}
{{- define "meshkeeper.servesWebhooks" -}}
{{- if or (eq .Values.mode "inject") .Values.validatingWebhooks }}true{{ end }}
{{- end }}

{{/* The ServiceAccount subject every binding names. */}}
{{- define "meshkeeper.subject" -}}
- kind: ServiceAccount
  name: meshkeeper-controller-manager
  namespace: {{ .Release.Namespace }}
{{- end }}

{{/*
meshkeeper.generated FILE: the YAML documents of a file copied from config/ by `make chart-files`
(controller-gen's output and the alerting rules), as a list of objects.
*/}}
{{- define "meshkeeper.generated" -}}
{{- $docs := list }}
{{- range $doc := regexSplit "(?m)^---\\s*$" (.root.Files.Get .file) -1 }}
{{- $o := fromYaml $doc }}
{{- if $o.kind }}{{ $docs = append $docs $o }}{{ end }}
{{- end }}
{{- toJson $docs }}
{{- end }}
