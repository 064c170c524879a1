using System.Numerics;

namespace Lockstep.Backends.Managed.Kernels;

// N batch, K classes; s [N × K] scores, y_n the label of row n.

/// <summary>The losses on top of the scores: softmax cross-entropy and the multiclass SVM, each with dS.</summary>
internal static class Losses
{
    // L = mean_n (log Σ_j exp(s_nj − m_n) − (s_{n,y_n} − m_n)), m_n = max_j s_nj;  dS = (softmax(s) − onehot(y)) / N
    public static double SoftmaxCrossEntropy<T>(ReadOnlySpan<T> scores, ReadOnlySpan<int> labels, int classes, Span<T> dScores)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        int n = labels.Length;
        double loss = 0;
        for (int i = 0; i < n; i++)
        {
            var s = scores.Slice(i * classes, classes);
            var d = dScores.Slice(i * classes, classes);
            double max = double.NegativeInfinity;
            foreach (T v in s) max = Math.Max(max, double.CreateTruncating(v));
            double sum = 0;
            for (int j = 0; j < classes; j++) sum += Math.Exp(double.CreateTruncating(s[j]) - max);
            loss += Math.Log(sum) - (double.CreateTruncating(s[labels[i]]) - max);
            for (int j = 0; j < classes; j++)
            {
                double p = Math.Exp(double.CreateTruncating(s[j]) - max) / sum;
                d[j] = T.CreateTruncating(((j == labels[i] ? p - 1 : p)) / n);
            }
        }
        return loss / n;
    }

    // L = mean_n Σ_{j≠y_n} max(0, s_nj − s_{n,y_n} + 1);  dS_nj = [margin > 0] / N, dS_{n,y_n} = −(count of margins > 0) / N
    public static double MulticlassSvm<T>(ReadOnlySpan<T> scores, ReadOnlySpan<int> labels, int classes, Span<T> dScores)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        int n = labels.Length;
        T share = T.One / T.CreateTruncating(n);
        double loss = 0;
        for (int i = 0; i < n; i++)
        {
            var s = scores.Slice(i * classes, classes);
            var d = dScores.Slice(i * classes, classes);
            int y = labels[i];
            int active = 0;
            for (int j = 0; j < classes; j++)
            {
                if (j == y) continue;
                T margin = s[j] - s[y] + T.One;
                if (margin > T.Zero)
                {
                    loss += double.CreateTruncating(margin);
                    d[j] = share;
                    active++;
                }
                else
                {
                    // A NaN margin makes the loss NaN, as everywhere else; its subgradient is taken as 0.
                    if (T.IsNaN(margin)) loss = double.NaN;
                    d[j] = T.Zero;
                }
            }
            d[y] = -T.CreateTruncating(active) * share;
        }
        return loss / n;
    }
}
