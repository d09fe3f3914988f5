{{/* The release's name, cut to 52 characters: StatefulSet pods add "-N" and labels stop at 63. */}}
{{- define "ferry.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 52 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 52 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "ferry.etcdName" -}}
{{- printf "%s-etcd" (include "ferry.fullname" .) -}}
{{- end -}}

{{- define "ferry.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/part-of: ferry
{{- end -}}

{{- define "ferry.brokerSelector" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: broker
{{- end -}}

{{- define "ferry.etcdSelector" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: etcd
{{- end -}}

{{/* The scheme of the chart's own etcd: https with etcd.tls on, for its clients and its peers alike. */}}
{{- define "ferry.etcdScheme" -}}
{{- if .Values.etcd.tls.enabled -}}https{{- else -}}http{{- end -}}
{{- end -}}

{{/* etcd's client URLs, comma-separated: the chart's own members, or the given endpoints. */}}
{{- define "ferry.etcdEndpoints" -}}
{{- if .Values.etcd.enabled -}}
{{- $name := include "ferry.etcdName" . -}}
{{- $scheme := include "ferry.etcdScheme" . -}}
{{- $urls := list -}}
{{- range $i := until (int .Values.etcd.replicas) -}}
{{- $urls = append $urls (printf "%s://%s-%d.%s-headless:2379" $scheme $name $i $name) -}}
{{- end -}}
{{- join "," $urls -}}
{{- else -}}
{{- $endpoints := required "etcd.endpoints: the client URLs of an existing etcd when etcd.enabled is false" (join "," .Values.etcd.endpoints) -}}
{{- if .Values.etcd.tls.enabled -}}
{{- range .Values.etcd.endpoints -}}
{{- if not (hasPrefix "https://" .) -}}
{{- fail (printf "etcd.tls: every endpoint is https:// with TLS on, not %s" .) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- $endpoints -}}
{{- end -}}
{{- end -}}

{{/* etcd's initial cluster: every member's name and peer URL. */}}
{{- define "ferry.etcdInitialCluster" -}}
{{- $name := include "ferry.etcdName" . -}}
{{- $scheme := include "ferry.etcdScheme" . -}}
{{- $members := list -}}
{{- range $i := until (int .Values.etcd.replicas) -}}
{{- $members = append $members (printf "%s-%d=%s://%s-%d.%s-headless.$(NAMESPACE).svc.cluster.local:2380" $name $i $scheme $name $i $name) -}}
{{- end -}}
{{- join "," $members -}}
{{- end -}}

{{- define "ferry.httpScheme" -}}
{{- if .Values.tls.enabled -}}HTTPS{{- else -}}HTTP{{- end -}}
{{- end -}}
