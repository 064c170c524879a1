using System.Globalization;
using System.Runtime.CompilerServices;

namespace Lockstep.Backends.Managed.Tensors;

/// <summary>
/// Checks an op's allocations before any is made, so that one that cannot succeed fails up front with the layer's
/// name and the size it wanted, not as an OverflowException or an OutOfMemoryException deep inside a kernel.
/// </summary>
internal static class MemoryBudget
{
    /// <summary>Throws unless <paramref name="elements"/> of <typeparamref name="T"/> fit one .NET array and, together
    /// with <paramref name="otherElements"/>, the memory this process may use.</summary>
    public static void Require<T>(string layer, string what, long elements, long otherElements = 0) where T : unmanaged =>
        Require<T>(layer, what, null, elements, otherElements);

    /// <summary>As above, the message naming <paramref name="what"/> and <paramref name="shape"/> (joined only on failure:
    /// a passing check allocates nothing).</summary>
    public static void Require<T>(string layer, string what, Shape? shape, long elements, long otherElements) where T : unmanaged
    {
        if (shape is not null && (elements > Array.MaxLength || (elements + otherElements) * Unsafe.SizeOf<T>() > Available))
        {
            what = what + " " + shape;
        }
        long size = Unsafe.SizeOf<T>();
        if (elements > Array.MaxLength)
        {
            throw new InsufficientMemoryException(string.Create(CultureInfo.InvariantCulture,
                $"{layer}: the {what} needs {elements:N0} elements ({Bytes(elements * size)}), more than one array can hold " +
                $"({Array.MaxLength:N0}); use a smaller batch or input"));
        }
        long total = (elements + otherElements) * size;
        long available = Available;
        if (total > available)
        {
            throw new InsufficientMemoryException(string.Create(CultureInfo.InvariantCulture,
                $"{layer}: the {what} needs {Bytes(total)} with the op's other buffers, but this process may use at most " +
                $"{Bytes(available)}; use a smaller batch or input"));
        }
    }

    // The memory the GC may use (physical or the container's limit): read once, since GetGCMemoryInfo allocates.
    private static readonly long Available = GC.GetGCMemoryInfo().TotalAvailableMemoryBytes;

    private static string Bytes(long bytes) =>
        bytes >= 1L << 30 ? string.Create(CultureInfo.InvariantCulture, $"{bytes / (double)(1L << 30):0.#} GiB")
        : string.Create(CultureInfo.InvariantCulture, $"{bytes / (double)(1L << 20):0.#} MiB");
}
