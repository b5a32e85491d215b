package cli

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"
	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/meshkeeper/meshkeeper/internal/diagnose"
	"github.com/meshkeeper/meshkeeper/internal/version"
)

// versionReport is what `meshkeeper version -o json` prints.
type versionReport struct {
	Client    version.Info      `json:"client"`
	Operators []operatorVersion `json:"operators,omitempty"`
	Warnings  []string          `json:"warnings,omitempty"`
}

type operatorVersion struct {
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	Image     string `json:"image"`
	Tag       string `json:"tag,omitempty"`
	Ready     int32  `json:"readyReplicas"`
	Replicas  int32  `json:"replicas"`
}

func newVersionCommand(streams genericiooptions.IOStreams) *cobra.Command {
	cf := genericclioptions.NewConfigFlags(true)
	var (
		mesh       meshFlags
		clientOnly bool
		out        = string(outputTable)
	)
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print this build, and the operator's image in the cluster",
		Long: `Print this build's version, and the image of the operator running in the cluster
(--operator-namespace). The CLI's checks and the operator's verdicts match when both come from
the same release: a warning says when they do not.`,
		Example: `  kubectl meshkeeper version
  meshkeeper version --client -o json`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			o := output(out)
			if err := o.validate(); err != nil {
				return err
			}
			rep := versionReport{Client: version.Get()}
			var clusterErr error
			if !clientOnly {
				clusterErr = operatorVersions(c, cf, mesh.operatorNamespace, &rep)
			}
			if err := printVersion(streams.Out, o, rep); err != nil {
				return err
			}
			for _, w := range rep.Warnings {
				fmt.Fprintln(streams.ErrOut, "warning: "+w)
			}
			return clusterErr
		},
	}
	cf.AddFlags(cmd.Flags())
	cmd.Flags().StringVar(&mesh.operatorNamespace, "operator-namespace", "meshkeeper-system", "namespace the meshkeeper operator runs in")
	cmd.Flags().BoolVar(&clientOnly, "client", false, "print this build only; read nothing from the cluster")
	cmd.Flags().StringVarP(&out, "output", "o", out, "table, json or yaml")
	return cmd
}

// operatorVersions reads meshkeeper's Deployments and compares their image tags with this build.
func operatorVersions(c *cobra.Command, cf *genericclioptions.ConfigFlags, namespace string, rep *versionReport) error {
	k, err := connect(cf)
	if err != nil {
		return err
	}
	var deps appsv1.DeploymentList
	if err := k.client.List(c.Context(), &deps, client.InNamespace(namespace),
		client.MatchingLabels{diagnose.OperatorLabelKey: diagnose.OperatorLabelValue}); err != nil {
		return apiError(err, k.host, "list", "deployments", namespace)
	}
	if len(deps.Items) == 0 {
		rep.Warnings = append(rep.Warnings, fmt.Sprintf("no Deployment labelled %s=%s in namespace %s: pass --operator-namespace where the operator runs",
			diagnose.OperatorLabelKey, diagnose.OperatorLabelValue, namespace))
	}
	for _, d := range deps.Items {
		ov := operatorVersion{Namespace: d.Namespace, Name: d.Name, Ready: d.Status.ReadyReplicas, Replicas: 1}
		if d.Spec.Replicas != nil {
			ov.Replicas = *d.Spec.Replicas
		}
		for _, ctr := range d.Spec.Template.Spec.Containers {
			if ctr.Name == "manager" || ov.Image == "" {
				ov.Image = ctr.Image
			}
		}
		ov.Tag = version.ImageTag(ov.Image)
		rep.Operators = append(rep.Operators, ov)
		if w := versionSkew(rep.Client.Version, ov); w != "" {
			rep.Warnings = append(rep.Warnings, w)
		}
	}
	return nil
}

// versionSkew says when the operator's image and this build are different releases, or when
// that cannot be told although one of them is a release.
func versionSkew(cli string, op operatorVersion) string {
	where := fmt.Sprintf("the operator %s/%s runs %s", op.Namespace, op.Name, op.Image)
	switch {
	case version.IsRelease(cli) && version.IsRelease(op.Tag) && cli != op.Tag:
		return fmt.Sprintf("%s, this CLI is %s: install the CLI of the operator's release (or upgrade the operator) so that both judge pods the same way", where, cli)
	case version.IsRelease(cli) != version.IsRelease(op.Tag) && op.Tag != "":
		return fmt.Sprintf("%s, this CLI is %s: one of them is a development build, so they may judge pods differently", where, cli)
	}
	return ""
}

func printVersion(w io.Writer, o output, rep versionReport) error {
	if o != outputTable {
		return writeData(w, o, rep)
	}
	fmt.Fprintf(w, "meshkeeper %s\n", rep.Client)
	for _, op := range rep.Operators {
		fmt.Fprintf(w, "operator %s/%s: %s (%d/%d ready)\n", op.Namespace, op.Name, op.Image, op.Ready, op.Replicas)
	}
	return nil
}
