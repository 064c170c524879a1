using System.Collections.Immutable;

namespace Lockstep;

/// <summary>
/// Dimensions of a tensor, outermost first. Activations are NCHW (N batch, C channels, H height,
/// W width), as in libtorch; CONV weights are [K, C, F_h, F_w], FC weights [out, in], biases [K].
/// </summary>
public sealed class Shape : IEquatable<Shape>
{
    private readonly ImmutableArray<int> _dims;

    public Shape(params int[] dims)
    {
        ArgumentNullException.ThrowIfNull(dims);
        foreach (int d in dims)
        {
            if (d < 0) throw new ArgumentException($"a shape cannot have a negative dimension: [{string.Join(", ", dims)}]");
        }
        _dims = [.. dims];
    }

    /// <summary>An NCHW activation shape.</summary>
    public static Shape Nchw(int n, int c, int h, int w) => new(n, c, h, w);

    public int Rank => _dims.Length;
    public int this[int axis] => _dims[axis];
    public ImmutableArray<int> Dims => _dims;

    /// <summary>Number of elements.</summary>
    public long Count
    {
        get
        {
            long count = 1;
            foreach (int d in _dims) count *= d;
            return count;
        }
    }

    public int N => Axis(0);
    public int C => Axis(1);
    public int H => Axis(2);
    public int W => Axis(3);

    /// <summary>Elements per item of the batch: the product of all but the first dimension.</summary>
    public long PerItem => Rank == 0 ? 1 : Count / Math.Max(1, _dims[0]);

    private int Axis(int i) =>
        Rank == 4 ? _dims[i] : throw new InvalidOperationException($"shape {this} is not NCHW (rank 4)");

    public bool Equals(Shape? other) => other is not null && _dims.AsSpan().SequenceEqual(other._dims.AsSpan());
    public override bool Equals(object? obj) => obj is Shape s && Equals(s);
    public override int GetHashCode()
    {
        var hash = new HashCode();
        foreach (int d in _dims) hash.Add(d);
        return hash.ToHashCode();
    }

    public static bool operator ==(Shape? a, Shape? b) => a is null ? b is null : a.Equals(b);
    public static bool operator !=(Shape? a, Shape? b) => !(a == b);

    public override string ToString() => "[" + string.Join(", ", _dims) + "]";
}
