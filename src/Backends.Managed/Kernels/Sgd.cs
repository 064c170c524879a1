using System.Numerics;

namespace Lockstep.Backends.Managed.Kernels;

/// <summary>Stochastic gradient descent with momentum and L2 weight decay, in place.</summary>
internal static class Sgd
{
    // v = momentum·v − lr·(g + weightDecay·p);  p = p + v   (in T, in this order, so that another backend can match it bit for bit)
    public static void Step<T>(Span<T> p, ReadOnlySpan<T> g, Span<T> v, T learningRate, T momentum, T weightDecay)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        for (int i = 0; i < p.Length; i++)
        {
            v[i] = momentum * v[i] - learningRate * (g[i] + weightDecay * p[i]);
            p[i] = p[i] + v[i];
        }
    }
}
