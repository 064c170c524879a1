using System.Globalization;

namespace Lockstep;

/// <summary>
/// The notes' output-size rule W2 = (W − F + 2P)/S + 1, with its error messages. The one place it is computed.
/// With dilation D the window spans D·(F − 1) + 1 input elements (the effective kernel), and with asymmetric
/// padding 2P becomes P_begin + P_end: W2 = (W − (D·(F − 1) + 1) + P_begin + P_end)/S + 1.
/// </summary>
public static class OutputSize
{
    /// <summary>
    /// Output length along one axis. <paramref name="axis"/> is the notes' letter (W or H), used in messages;
    /// <paramref name="layer"/> names the layer.
    /// </summary>
    public static int Compute(string layer, char axis, int input, int kernel, int stride, int pad, SizeRule rule) =>
        Compute(layer, axis, input, kernel, stride, pad, pad, 1, rule);

    /// <summary>Output length along one axis with padding <paramref name="padBegin"/> before the input and <paramref name="padEnd"/> after it, and a window dilated by <paramref name="dilation"/>.</summary>
    public static int Compute(string layer, char axis, int input, int kernel, int stride, int padBegin, int padEnd, int dilation, SizeRule rule)
    {
        // In long throughout: the fuzz tests draw int.MaxValue for every number, and W + 2P, D·(F − 1) + 1 and
        // W2 itself can each pass int.MaxValue.
        long effective = (long)dilation * (kernel - 1) + 1;
        long span = (long)input - effective + padBegin + padEnd;
        // The messages are built only on failure: a valid call allocates nothing.
        if (span < 0)
        {
            string arithmetic = Arithmetic(axis, input, kernel, stride, padBegin, padEnd, dilation);
            string window = dilation == 1 ? $"{kernel}-wide window" : $"{effective}-wide window (F={kernel} dilated by D={dilation})";
            throw new ArgumentException(
                $"{layer}: {arithmetic} < 1: the {window} does not fit the padded input " +
                $"({input} + {padBegin + padEnd}) along {axis}; use a smaller kernel or more padding");
        }

        long quotient = span / stride;
        if (span % stride == 0) return Fits(layer, axis, quotient + 1);
        switch (rule)
        {
            case SizeRule.Floor:
                return Fits(layer, axis, quotient + 1);
            case SizeRule.Ceil:
                // As libtorch's and ONNX's pooling: round up, but the last window must start inside the input or the
                // padding before it.
                long size = quotient + 2;
                if ((size - 1) * stride >= (long)input + padBegin) size--;
                return Fits(layer, axis, size);
            default:
                string arithmetic = Arithmetic(axis, input, kernel, stride, padBegin, padEnd, dilation);
                double exact = (double)span / stride + 1;
                throw new ArgumentException(string.Create(CultureInfo.InvariantCulture,
                    $"{layer}: {arithmetic} = {exact:0.###} is not an integer; choose a stride that divides {span}, " +
                    $"change the padding, or opt in to SizeRule.Floor / SizeRule.Ceil"));
        }
    }

    private static int Fits(string layer, char axis, long size) =>
        size <= Array.MaxLength ? (int)size
            : throw new ArgumentException(string.Create(CultureInfo.InvariantCulture,
                $"{layer}: the output would be {size:N0} long along {axis}, more than the {Array.MaxLength:N0} elements an array holds"));

    /// <summary>Refuses a window whose span D·(F − 1) + 1 does not fit an int (a huge dilation), before anything computes it.</summary>
    public static void CheckWindow(string layer, int kernelH, int kernelW, int dilationH, int dilationW)
    {
        long h = (long)dilationH * (kernelH - 1) + 1, w = (long)dilationW * (kernelW - 1) + 1;
        if (h > int.MaxValue || w > int.MaxValue)
        {
            throw new ArgumentException(string.Create(CultureInfo.InvariantCulture,
                $"{layer}: the dilated window D·(F - 1) + 1 = {h:N0}×{w:N0} spans more than {int.MaxValue:N0} inputs"));
        }
    }

    /// <summary>The number of input elements a window spans: D·(F − 1) + 1.</summary>
    public static int EffectiveKernel(int kernel, int dilation) => dilation * (kernel - 1) + 1;

    /// <summary>The rule with the numbers in it, in the notes' form when there is no dilation and the padding is symmetric.</summary>
    private static string Arithmetic(char axis, int input, int kernel, int stride, int padBegin, int padEnd, int dilation)
    {
        string f = dilation == 1 ? "F" : "(D·(F - 1) + 1)";
        string fValue = dilation == 1 ? $"{kernel}" : $"({dilation}·({kernel} - 1) + 1)";
        string p = padBegin == padEnd ? "2P" : "P_begin + P_end";
        string pValue = padBegin == padEnd ? $"{2 * padBegin}" : $"{padBegin} + {padEnd}";
        return string.Create(CultureInfo.InvariantCulture, $"({axis} - {f} + {p})/S + 1 = ({input} - {fValue} + {pValue})/{stride} + 1");
    }
}
